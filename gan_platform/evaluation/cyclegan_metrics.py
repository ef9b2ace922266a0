"""CycleGAN's metrics: FID in each direction, cycle error, label preservation, error against the truth.

On evaluation images (testA/testB, or the held-out digits) with G1: A -> B and G2: B -> A:

    eval/fid_a2b                 FID(real B, G1(A)); eval/fid_b2a: FID(real A, G2(B))  (torchmetrics)
    eval/cycle_error             mean |G2(G1(a)) - a| and |G1(G2(b)) - b| over pixels (in [-1, 1] units),
                                 averaged over both ways; eval/cycle_error_a, eval/cycle_error_b each way
    eval/label_preservation      digits only: share of images whose digit classifier label survives
                                 translation, averaged over both ways (_a2b, _b2a each way)
    eval/translation_error       embedded pair only: mean |G1(a) - T(a)| (a2b) and |T(G2(b)) - b|
                                 (b2a: does the translation map back onto b under the true mapping T?)
    eval/identity_error          the same errors for doing nothing (G = identity): the bar to beat

FID features (`eval.features`): ``digits`` (the offline digit classifier's 64 penultimate features of
each image seen as a grey digit through the dataset's known style view; the default for digit
styles), ``inception`` (torchmetrics' InceptionV3 with torch-fidelity's weights file, looked up in
``eval.inception_weights`` or the torch hub cache; never downloaded), ``none``, or ``auto``: digits
where the images are digits, else inception where the weights are on disk, else no FID, with the
reason in `protocol()`. Digit classifier features do not describe photos, so real data needs inception.

Label preservation of style-B images: the classifier reads grey bright-on-dark digits, so B images
are shown to it through the known inverse of the style (`digit_styles.view_b`: untint, uninvert,
erode). A label survives when the classifier's label of the translation equals its label of the source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import Tensor, nn

from gan_platform.checkpoint import file_sha256
from gan_platform.errors import ConfigError

FEATURES = ("auto", "digits", "inception", "none")
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"


class StyleViewFeatures(nn.Module):
    """torchmetrics feature extractor: images in [0, 1] of one style -> digit classifier features."""

    def __init__(self, classifier: nn.Module, view: Callable[[Tensor], Tensor]):
        super().__init__()
        self.classifier, self.view = classifier, view
        self.num_features = int(classifier.num_features)

    def forward(self, images01: Tensor) -> Tensor:
        return self.classifier.features(self.view(images01 * 2 - 1))


def find_inception_weights(path: Optional[str] = None) -> Optional[Path]:
    """torch-fidelity's InceptionV3 weights: `path` if given, else the torch hub cache; None if absent."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError(f"eval.inception_weights '{p}' is not a file: point it at {INCEPTION_FILE}.")
        return p
    p = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    return p if p.is_file() else None


class CycleGANEvaluator:
    """`evaluate(task, step)` -> the metrics above; `protocol()` says how they were measured."""

    def __init__(self, dataset: Any, device: torch.device, features: str = "auto", num_samples: int = 1000,
                 inception_weights: Optional[str] = None):
        if features not in FEATURES:
            raise ConfigError(f"eval.features must be one of {', '.join(FEATURES)} for CycleGAN, got '{features}'.")
        self.dataset, self.device, self.num_samples = dataset, device, int(num_samples)
        self.views = getattr(dataset, "digit_view", None)
        self.classifier = None
        self.note = ""
        self._protocol: dict[str, Any] = {"samples_a": len(dataset.test_images("a", self.num_samples)),
                                          "samples_b": len(dataset.test_images("b", self.num_samples)),
                                          "images": "train (no testA/testB)" if dataset.test_from_train else "test",
                                          "error_units": "mean absolute pixel difference, images in [-1, 1]"}
        self.inception_path: Optional[Path] = None
        if features == "digits" and self.views is None:
            raise ConfigError(f"eval.features=digits needs digit images, and '{dataset.name}' holds other images: "
                              "use eval.features=inception (with its weights file) or none.")
        if self.views is not None or features == "digits":
            from gan_platform.evaluation.digit_classifier import load_digit_classifier

            self.classifier = load_digit_classifier(dataset.resolution).to(device)
        if features == "auto":
            features = "digits" if self.views is not None else ("inception" if find_inception_weights(inception_weights) else "none")
            if features == "none":
                self.note = (f"FID skipped: these images are not digits and InceptionV3's weights ({INCEPTION_FILE}) "
                             f"are not in {Path(torch.hub.get_dir()) / 'checkpoints'} or eval.inception_weights.")
        if features == "inception":
            self.inception_path = find_inception_weights(inception_weights)
            if self.inception_path is None:
                raise ConfigError(f"eval.features=inception needs {INCEPTION_FILE}: put it in "
                                  f"{Path(torch.hub.get_dir()) / 'checkpoints'} or set eval.inception_weights=PATH.")
        self.features = features
        self._protocol["fid_features"] = features
        if features == "digits":
            self._protocol.update({"fid_extractor": "digit classifier penultimate layer (64) through the style views",
                                   "fid_extractor_sha256": self.classifier.sha256})
        elif features == "inception":
            self._protocol.update({"fid_extractor": "InceptionV3 pool3 (2048), torchmetrics",
                                   "fid_extractor_sha256": file_sha256(self.inception_path), "resize": "bilinear to 299"})
        if self.note:
            self._protocol["note"] = self.note

    @classmethod
    def from_config(cls, cfg: Any, dataset: Any, acc: Any) -> "CycleGANEvaluator":
        ev = cfg.eval
        return cls(dataset, acc.device, features=str(ev.get("features", "auto") or "auto"),
                   num_samples=int(ev.get("num_samples", 1000) or 1000), inception_weights=ev.get("inception_weights"))

    def protocol(self) -> dict[str, Any]:
        return dict(self._protocol)

    # -- pieces ----------------------------------------------------------------------------
    def _fid(self, real: Tensor, fake: Tensor, style: str) -> float:
        from torchmetrics.image.fid import FrechetInceptionDistance

        if self.features == "digits":
            feature: Any = StyleViewFeatures(self.classifier, self.views[style])
            fid = FrechetInceptionDistance(feature=feature, normalize=True).to(self.device)
        else:
            fid = FrechetInceptionDistance(feature=2048, normalize=True, antialias=False,
                                           feature_extractor_weights_path=str(self.inception_path)).to(self.device)
        for images, is_real in ((real, True), (fake, False)):
            for i in range(0, len(images), 250):
                fid.update(((images[i:i + 250] + 1) / 2).clamp(0, 1), real=is_real)
        return float(fid.compute())

    def _labels(self, x: Tensor, style: str) -> Tensor:
        return self.classifier.predict(self.views[style](x))

    @torch.no_grad()
    def evaluate(self, task: Any, step: int) -> dict[str, float]:
        """All metrics on the evaluation images (every process computes the same numbers)."""
        a = self.dataset.test_images("a", self.num_samples).to(self.device)
        b = self.dataset.test_images("b", self.num_samples).to(self.device)
        a2b, b2a = task.translate(a, "a2b"), task.translate(b, "b2a")
        back_a, back_b = task.translate(a2b, "b2a"), task.translate(b2a, "a2b")
        m: dict[str, float] = {"eval/cycle_error_a": (back_a - a).abs().mean().item(),
                               "eval/cycle_error_b": (back_b - b).abs().mean().item()}
        m["eval/cycle_error"] = (m["eval/cycle_error_a"] + m["eval/cycle_error_b"]) / 2
        if self.features in ("digits", "inception"):
            m["eval/fid_a2b"] = self._fid(b, a2b, "b")
            m["eval/fid_b2a"] = self._fid(a, b2a, "a")
        if self.views is not None:
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
