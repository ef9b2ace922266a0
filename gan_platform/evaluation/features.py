"""Feature extractors for FID, KID and precision/recall: `inception`, `digits`, `identity`, and
`dinov2` and `clip` (foundation.py).

Every extractor maps generator-form samples (images in [-1, 1], or 2-D points) to (N, d) features
and says, in `protocol()`, what it is and the SHA-256 of its weights, so a number can be traced
to the network that produced it.

- `inception`: torchmetrics' own FID Inception (torch-fidelity's
  `weights-inception-2015-12-05-6726825d.pth`), fed uint8 RGB as torch-fidelity feeds it
  (grey images repeated to three channels, TF-1 style bilinear resize to 299). The file is looked
  for at `eval.inception_weights`, then in the torch hub cache (inception_weights.py); if missing it is downloaded from
  torch-fidelity's release; a file that does not load as that network is refused.
- `digits`: the penultimate layer of the shipped digit classifier (evaluation/digit_classifier.py),
  one 64-d block per channel (stacked digits: 3 x 64).
- `identity`: the points themselves (2-D mixtures), or an image's pixels.
- `dinov2`, `clip`: DINOv2 ViT-L/14 and CLIP ViT-L/14 from weights files the user supplies
  (foundation.py). Their Fréchet distance is `eval/fd_dinov2` / `eval/fd_clip` and their kernel
  distance `eval/kd_dinov2` / `eval/kd_clip`, never `eval/fid`: an extractor names its own
  (`fd_name`, `kid_name`), so a number is never reported under another feature space's name.

Whether a FID on an extractor's features means anything for the data is decided here, once
(`fid_applies`): Inception on images, the digit classifier on digit images, identity on points, and
any extractor of `eval.extractors`. Elsewhere (photos measured with the digit classifier, or
pixels) the evaluators report no FID under the standard names and say what is needed instead.
DINOv2 and CLIP fit any images (not points).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor, nn

from gan_platform.data.base import evaluation_of
from gan_platform.runs.checkpoint import file_sha256
from gan_platform.errors import ConfigError
from gan_platform.evaluation.inception_weights import (INCEPTION_FILE, find_inception_weights,  # noqa: F401 - public here
                                                       inception_cache_path, load_inception)
from gan_platform.evaluation.resize import check_resize, resize_clean

log = logging.getLogger(__name__)

# The built-in extractors by their `eval.features` name, each built from a `_target_` called with
# (sample_shape, eval_cfg); `eval.extractors` in the config adds more the same way
# (NAME: {_target_: my.module.factory}), chosen with eval.features=NAME.
BUILT_IN = {
    "inception": "gan_platform.evaluation.features.inception_features",
    "digits": "gan_platform.evaluation.features.digit_features",
    "identity": "gan_platform.evaluation.features.identity_features",
    "dinov2": "gan_platform.evaluation.foundation.dinov2_features",
    "clip": "gan_platform.evaluation.foundation.clip_features",
}
# The feature spaces with a distance of their own name (every other extractor's is eval/fid, eval/kid).
FD_NAMES = {"dinov2": "fd_dinov2", "clip": "fd_clip"}
EXTRACTORS = ("auto", *BUILT_IN)


def extractor_choices(eval_cfg: Any = None) -> tuple[str, ...]:
    """What `eval.features` may name: auto, the built-in extractors and those of `eval.extractors`."""
    extra = tuple(str(k) for k in ((eval_cfg or {}).get("extractors") or {}) if str(k) not in EXTRACTORS)
    return EXTRACTORS + extra


class FeatureExtractor(nn.Module):
    """Samples in generator form -> (N, num_features) float features, in batches, without grad."""

    name = "?"
    num_features = 0
    sha256: Optional[str] = None
    fd_name, kid_name = "fid", "kid"   # eval/<fd_name>, eval/<kid_name>: FD_NAMES for DINOv2 and CLIP

    def features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def forward(self, x: Tensor, batch_size: int = 500) -> Tensor:
        return torch.cat([self.features(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)])

    def protocol(self) -> dict[str, Any]:
        return {"extractor": self.name, "num_features": self.num_features, "weights_sha256": self.sha256}


class IdentityFeatures(FeatureExtractor):
    """The samples themselves, flattened."""

    name = "identity"

    def __init__(self, dim: int):
        super().__init__()
        self.num_features = dim

    def features(self, x: Tensor) -> Tensor:
        return x.flatten(1)


class DigitFeatures(FeatureExtractor):
    """The digit classifier's 64-d penultimate features, one block per channel; `predict` gives
    the digit of every channel, (N, C)."""

    name = "digits"

    def __init__(self, channels: int, resolution: int):
        super().__init__()
        from gan_platform.evaluation.digit_classifier import load_digit_classifier

        self.classifier = load_digit_classifier(resolution)
        self.channels = channels
        self.num_features = channels * self.classifier.num_features
        self.sha256 = self.classifier.sha256

    def features(self, x: Tensor) -> Tensor:
        return torch.cat([self.classifier.features(x[:, c:c + 1]) for c in range(x.shape[1])], dim=1)

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        return self.features_and_digits(x)[1]

    @torch.no_grad()
    def features_and_digits(self, x: Tensor, batch_size: int = 500) -> tuple[Tensor, Tensor]:
        """Features (N, 64 C) and the predicted digit of every channel (N, C), from one pass."""
        feats, digits, _ = self.features_digits_and_confidence(x, batch_size)
        return feats, digits

    @torch.no_grad()
    def features_digits_and_confidence(self, x: Tensor, batch_size: int = 500) -> tuple[Tensor, Tensor, Tensor]:
        """Features (N, 64 C), the predicted digit of every channel (N, C) and the classifier's
        probability for it (N, C), from one pass."""
        feats, digits, confidence = [], [], []
        for i in range(0, len(x), batch_size):
            per_channel = [self.classifier.features(x[i:i + batch_size, c:c + 1]) for c in range(x.shape[1])]
            feats.append(torch.cat(per_channel, dim=1).float())
            prob, digit = torch.stack([self.classifier.head(f).float().softmax(1) for f in per_channel], dim=1).max(2)
            digits.append(digit)
            confidence.append(prob)
        return torch.cat(feats), torch.cat(digits), torch.cat(confidence)

    def protocol(self) -> dict[str, Any]:
        return {**super().protocol(), "classifier_test_accuracy": self.classifier.test_accuracy,
                "resolution": self.classifier.resolution,
                "resize": f"bilinear to {self.classifier.resolution} (the classifier's input), no antialiasing"}


class InceptionFeatures(FeatureExtractor):
    """torchmetrics' FID Inception v3 (2048-d pool features and the 1008 logits of the Inception
    Score) from a checked weights file; images reach 299x299 by `resize` (resize.py)."""

    name = "inception"
    num_features = 2048

    def __init__(self, weights: Path, resize: str = "torchmetrics"):
        super().__init__()
        self.weights, self.resize = Path(weights), check_resize(resize)
        self.net = load_inception(self.weights)
        self.sha256 = file_sha256(self.weights)

    def _uint8_rgb(self, x: Tensor) -> Tensor:
        u8 = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # [-1, 1] -> {0..255}
        if u8.shape[1] == 1:
            u8 = u8.expand(-1, 3, -1, -1)
        elif u8.shape[1] != 3:
            u8 = u8[:, :3]
        if self.resize == "clean":  # 299x299 here; the network's own TF-1 resize is then the identity
            u8 = resize_clean(u8, self.net.INPUT_IMAGE_SIZE)
        return u8.contiguous()

    def features(self, x: Tensor) -> Tensor:
        return self.net(self._uint8_rgb(x)).reshape(len(x), -1)

    @torch.no_grad()
    def features_and_logits(self, x: Tensor, batch_size: int = 500) -> tuple[Tensor, Tensor]:
        """Pool features (N, 2048) and the unbiased logits (N, 1008) of the Inception Score, one pass."""
        net = self.net
        saved = net.features_list
        net.features_list = ["2048", "logits_unbiased"]
        try:
            feats, logits = [], []
            for i in range(0, len(x), batch_size):
                f, lg = net._torch_fidelity_forward(self._uint8_rgb(x[i:i + batch_size]))
                feats.append(f.reshape(len(f), -1).float())
                logits.append(lg.float())
        finally:
            net.features_list = saved
        return torch.cat(feats), torch.cat(logits)

    def protocol(self) -> dict[str, Any]:
        how = {"torchmetrics": "tf1-bilinear to 299 (torch-fidelity, torchmetrics)",
               "clean": "PIL bicubic with antialiasing to 299, rounded to uint8 (clean-fid's resize)"}[self.resize]
        return {**super().protocol(), "weights_file": str(self.weights), "resize": how, "resize_mode": self.resize,
                "release_hash_prefix_matches": self.sha256.startswith(INCEPTION_FILE.rsplit("-", 1)[-1][:8])}


def shows_digits(dataset: Any) -> bool:
    """Digit images: a dataset that declares digit features (data/base.Evaluation: digits, stacked digits,
    MNIST), or one with a `digit_view` per style (digit_styles)."""
    return evaluation_of(dataset).features == "digits" or getattr(dataset, "digit_view", None) is not None


def resolve_extractor_name(choice: str, dataset: Any, weights: Optional[str] = None, eval_cfg: Any = None) -> str:
    """`auto` -> identity for points, digits for digit images, inception for other images
    (when its weights are already on disk, at `weights` or in the torch hub cache; else the pixels,
    with a warning, and no FID: `fid_applies`). The same resolution serves the GAN and the CycleGAN evaluator."""
    choices = extractor_choices(eval_cfg)
    if choice not in choices:
        raise ConfigError(f"eval.features must be one of {', '.join(choices)}, got '{choice}'.")
    if choice != "auto":
        return choice
    if dataset.kind == "points":
        return "identity"
    if shows_digits(dataset):
        return "digits"
    if (weights and Path(weights).expanduser().is_file()) or inception_cache_path().is_file():
        return "inception"
    log.warning("eval.features=auto: %s", fid_missing_reason(dataset))
    return "identity"


def fid_applies(name: str, dataset: Any, eval_cfg: Any = None) -> bool:
    """Whether a FID on `name`'s features means something for `dataset`: Inception on images, the
    digit classifier on digit images, identity on points, and one's own (`eval.extractors`)."""
    if name in ((eval_cfg or {}).get("extractors") or {}):
        return True
    if name == "inception" or name in FD_NAMES:
        return dataset.kind == "images"
    if name == "digits":
        return shows_digits(dataset)
    return name == "identity" and dataset.kind == "points"


def fd_metric_name(name: str) -> str:
    """The name of the Fréchet distance on extractor `name`'s features: fid, fd_dinov2 or fd_clip."""
    return FD_NAMES.get(name, "fid")


def fid_missing_reason(dataset: Any) -> str:
    """The one sentence said (once in the log, and in the protocol) where no FID is reported."""
    return (f"no FID, KID or Inception Score for '{dataset.name}': its images need Inception features and the "
            f"Inception weights file {INCEPTION_FILE} is not on disk, so only the metrics that hold without it "
            f"are reported (put the file at {inception_cache_path()} or set eval.inception_weights=PATH).")


def identity_features(sample_shape: tuple[int, ...], eval_cfg: Any) -> FeatureExtractor:
    """`identity`: the samples themselves (2-D points)."""
    return IdentityFeatures(int(torch.Size(sample_shape).numel()))


def _needs_images(name: str, sample_shape: tuple[int, ...]) -> None:
    if len(sample_shape) != 3:
        raise ConfigError(f"eval.features={name} needs images, but samples have shape {tuple(sample_shape)}: use eval.features=identity.")


def digit_features(sample_shape: tuple[int, ...], eval_cfg: Any) -> FeatureExtractor:
    """`digits`: the shipped digit classifier's penultimate features, one block per channel; images
    are resized to the nearest shipped classifier's side (16 or 32)."""
    _needs_images("digits", sample_shape)
    from gan_platform.evaluation.digit_classifier import resolution_for

    return DigitFeatures(int(sample_shape[0]), resolution_for(int(sample_shape[-1])))


def inception_features(sample_shape: tuple[int, ...], eval_cfg: Any) -> FeatureExtractor:
    """`inception`: torchmetrics' FID Inception, its weights found (or fetched) and checked."""
    _needs_images("inception", sample_shape)
    weights = find_inception_weights(eval_cfg.get("inception_weights"), eval_cfg.get("inception_url"),
                                     bool(eval_cfg.get("inception_download", True)))
    return InceptionFeatures(weights, str(eval_cfg.get("resize") or "torchmetrics"))


def build_extractor(name: str, sample_shape: tuple[int, ...], eval_cfg: Any) -> FeatureExtractor:
    """The extractor `name` for samples of `sample_shape`, built from its `_target_` (`eval.extractors`
    or the built-in one); checks happen here, before training."""
    from gan_platform.errors import instantiate

    node = ((eval_cfg or {}).get("extractors") or {}).get(name) or {"_target_": BUILT_IN[name]}
    return instantiate({"_target_": node["_target_"], "_partial_": True})(sample_shape=tuple(sample_shape), eval_cfg=eval_cfg)
