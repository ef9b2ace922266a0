"""A small digit classifier: the offline feature extractor and labeller for digit images.

The real Inception weights cannot be downloaded offline, and Inception features of 16x16
handwritten digits mean little anyway. This CNN is trained once, deterministically (fixed seed,
one thread, full-batch order from a seeded generator), on 2/3 of scikit-learn's digits and tested
on the held-out 1/3; the weights are cached with their SHA-256 and test accuracy. Its penultimate
layer gives features for FID/KID/precision/recall, its predictions give labels for mode counting,
class accuracy and label preservation.

    clf = load_digit_classifier(resolution=16)
    clf.features(x)   # (N, 64) for images in [-1, 1] of shape (N, 1, R, R)
    clf.predict(x)    # (N,) digit labels
    clf.sha256, clf.test_accuracy
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_platform.runs.rundir import atomic_write_bytes, atomic_write_json

FEATURES = 64
TRAIN_SEED = 0
EPOCHS = 60
VERSION = 1


def cache_dir() -> Path:
    """Where trained helper networks are cached: $GAN_PLATFORM_CACHE or ~/.cache/gan_platform."""
    return Path(os.environ.get("GAN_PLATFORM_CACHE", Path.home() / ".cache" / "gan_platform"))


class DigitClassifier(nn.Module):
    """Conv(32) -> Conv(64) -> global pooling -> Linear(64) features -> Linear(10) logits."""

    num_features = FEATURES

    def __init__(self, resolution: int = 16):
        super().__init__()
        self.resolution = resolution
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(256, FEATURES), nn.ReLU(),
        )
        self.head = nn.Linear(FEATURES, 10)
        self.sha256 = ""
        self.test_accuracy = float("nan")

    def _prepare(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"the digit classifier takes (N, 1, H, W) images in [-1, 1], got shape {tuple(x.shape)}")
        x = x.float()
        if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False)
        return x

    def features(self, x: Tensor) -> Tensor:
        """Penultimate-layer features (N, 64)."""
        return self.body(self._prepare(x))

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, 10)."""
        return self.head(self.features(x))

    @torch.no_grad()
    def predict(self, x: Tensor, batch_size: int = 1000) -> Tensor:
        return torch.cat([self(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def _split(n: int) -> tuple[Tensor, Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(TRAIN_SEED))
    cut = (2 * n) // 3
    return perm[:cut], perm[cut:]


def train_digit_classifier(resolution: int = 16) -> tuple[DigitClassifier, float]:
    """Train deterministically on 2/3 of the digits; returns (model, held-out accuracy)."""
    from gan_platform.data.digits import load_digit_images

    x_u8, y = load_digit_images(resolution)
    x = x_u8.float() / 127.5 - 1.0
    train_idx, test_idx = _split(len(x))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # bit-for-bit the same weights on every machine of this kind
    try:
        with torch.random.fork_rng():
            torch.manual_seed(TRAIN_SEED)
            model = DigitClassifier(resolution)
            opt = torch.optim.Adam(model.parameters(), lr=2e-3)
            g = torch.Generator().manual_seed(TRAIN_SEED)
            for _ in range(EPOCHS):
                order = train_idx[torch.randperm(len(train_idx), generator=g)]
                for i in range(0, len(order), 64):
                    b = order[i:i + 64]
                    # small random shifts make features robust to slightly off-centre generated digits
                    xb = torch.roll(x[b], shifts=tuple(torch.randint(-1, 2, (2,), generator=g).tolist()), dims=(2, 3))
                    loss = F.cross_entropy(model(xb), y[b])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            model.eval()
            acc = (model.predict(x[test_idx]) == y[test_idx]).float().mean().item()
    finally:
        torch.set_num_threads(threads)
    return model, acc


def load_digit_classifier(resolution: int = 16, cache: Optional[Path] = None) -> DigitClassifier:
    """The cached classifier for `resolution`, training and caching it on first use (~10 s on a CPU)."""
    folder = Path(cache) if cache is not None else cache_dir()
    weights = folder / f"digit_classifier_v{VERSION}_r{resolution}.pt"
    meta_path = weights.with_suffix(".json")
    model = DigitClassifier(resolution)
    meta = None
    if weights.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            data = weights.read_bytes()
            if hashlib.sha256(data).hexdigest() != meta["sha256"]:
                meta = None
            else:
                model.load_state_dict(torch.load(io.BytesIO(data), weights_only=True))
        except (OSError, ValueError, KeyError, RuntimeError):
            meta = None
    if meta is None:
        model, acc = train_digit_classifier(resolution)
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        data = buf.getvalue()
        meta = {"sha256": hashlib.sha256(data).hexdigest(), "test_accuracy": acc, "resolution": resolution,
                "version": VERSION, "train_seed": TRAIN_SEED, "epochs": EPOCHS}
        atomic_write_bytes(weights, data)
        atomic_write_json(meta_path, meta)
    model.sha256 = meta["sha256"]
    model.test_accuracy = float(meta["test_accuracy"])
    model.eval().requires_grad_(False)
    return model
