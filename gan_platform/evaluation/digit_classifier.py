"""A small digit classifier: the offline feature extractor and labeller for digit images.

The real Inception weights cannot be downloaded offline, and Inception features of 16x16
handwritten digits mean little anyway. This CNN is trained on 2/3 of scikit-learn's digits and
tested on the held-out 1/3. Its penultimate layer gives features for FID/KID/precision/recall, its
predictions give labels for mode counting, class accuracy and label preservation.

The weights ship with the package as fixed files (`weights/digit_classifier_r{16,32}.safetensors`,
safetensors: tensors only, nothing executed on load), each checked against the SHA-256 pinned in
`SHIPPED` before use, as the FID world agrees on one Inception file. Trained on each machine
instead, the classifier came out different from CPU to CPU (the same seed and recipe, other
rounding), and with it every number measured on digit features; now those numbers compare across
machines. `scripts/make_digit_classifiers` trains them again (`train_digit_classifier`, the recipe
below) for whoever wants to check or replace them; new files need new pins.

    clf = load_digit_classifier(resolution=16)
    clf.features(x)   # (N, 64) for images in [-1, 1] of shape (N, 1, R, R)
    clf.predict(x)    # (N,) digit labels
    clf.sha256, clf.test_accuracy
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_platform.errors import UserError

FEATURES = 64
TRAIN_SEED = 0
EPOCHS = 60


@dataclass(frozen=True)
class Shipped:
    """One shipped classifier file: its SHA-256 and its accuracy on the held-out third."""

    sha256: str
    test_accuracy: float


# resolution -> the file's pin; images of other sides are resized to the nearest of these (`resolution_for`).
# Made by `python scripts/make_digit_classifiers 16 32`. (At 64 the same network reads 95.7% of the
# held-out digits, against 98.0% at 32 from the same images halved: 64 x 64 images use the 32 one.)
SHIPPED: dict[int, Shipped] = {
    16: Shipped("e5e2379e8b9062459dd2515bff73f81b15dab33f5a8f5c54cdd1f04452044f3f", 0.9849749803543091),
    32: Shipped("456cd20fde3e8575728dbf7882834f5685a1a31689a5fc52daa90f6d014cfc1d", 0.9799666404724121),
}


def weights_name(resolution: int) -> str:
    return f"digit_classifier_r{resolution}.safetensors"


def resolution_for(side: int) -> int:
    """The shipped classifier for images `side` pixels wide: the nearest resolution (ties: the larger)."""
    return min(sorted(SHIPPED, reverse=True), key=lambda r: abs(r - side))


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
    torch.set_num_threads(1)  # one thread: the same weights from run to run on one machine (not across CPUs)
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


def weights_bytes(model: DigitClassifier) -> bytes:
    """The file a classifier ships as: its state dict in safetensors form (deterministic bytes)."""
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in model.state_dict().items()})


def load_digit_classifier(resolution: int = 16) -> DigitClassifier:
    """The shipped classifier for `resolution` (16 or 32), its SHA-256 checked against `SHIPPED`."""
    from safetensors.torch import load

    if resolution not in SHIPPED:
        raise UserError(f"No digit classifier ships for {resolution} x {resolution} images (there are "
                        f"{', '.join(map(str, sorted(SHIPPED)))}): pick one with resolution_for({resolution}).")
    pin = SHIPPED[resolution]
    resource = files("gan_platform.evaluation") / "weights" / weights_name(resolution)
    try:
        data = resource.read_bytes()
    except OSError as e:
        raise UserError(f"The digit classifier file {weights_name(resolution)} is missing from the installed package "
                        f"({e.strerror}): reinstall gan_platform (bash scripts/install).") from e
    sha = hashlib.sha256(data).hexdigest()
    if sha != pin.sha256:
        raise UserError(f"The digit classifier file {weights_name(resolution)} has SHA-256 {sha[:12]}..., not the pinned "
                        f"{pin.sha256[:12]}...: reinstall gan_platform, or pin new files in SHIPPED after "
                        "scripts/make_digit_classifiers.")
    model = DigitClassifier(resolution)
    model.load_state_dict(load(data))
    model.sha256, model.test_accuracy = sha, pin.test_accuracy
    model.eval().requires_grad_(False)
    return model
